-- Runs once, when the postgres container starts on an empty data volume (docker-entrypoint-initdb.d).
-- One database per service: each service owns its data and is migrated on its own.
CREATE DATABASE registry;
CREATE DATABASE uppka;
CREATE DATABASE dashat;
CREATE DATABASE reporting;
