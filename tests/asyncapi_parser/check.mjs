import { Parser } from '@asyncapi/parser';
import fs from 'node:fs';
const parser = new Parser();
const doc = fs.readFileSync(process.argv[2], 'utf8');
const { document, diagnostics } = await parser.parse(doc);
const errors = diagnostics.filter(d => d.severity === 0);
for (const d of diagnostics) console.log(JSON.stringify({severity: d.severity, code: d.code, message: d.message, path: d.path.join('.')}));
console.log(`errors=${errors.length} warnings=${diagnostics.filter(d=>d.severity===1).length} messages=${document ? document.allMessages().length : 0}`);
process.exit(errors.length || !document ? 1 : 0);
