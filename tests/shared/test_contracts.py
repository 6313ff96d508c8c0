"""The checked-in AsyncAPI document and JSON Schemas must equal what the code generates."""

from __future__ import annotations

from shared.events.asyncapi import build_documents, drift


def test_event_documents_do_not_drift() -> None:
    problems = drift()
    assert not problems, f"run `kencana events generate`; drifted: {problems}"


def test_asyncapi_document_lists_every_topic() -> None:
    import yaml

    document = yaml.safe_load(build_documents()["asyncapi.yaml"])
    assert document["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in document["channels"].values()}
    assert {"kencana.registry", "kencana.uppka", "kencana.dashat"} <= addresses
