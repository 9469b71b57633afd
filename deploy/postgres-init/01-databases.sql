-- Runs once, when the postgres container starts on an empty data volume
-- (docker-entrypoint-initdb.d). One database and one owning role per service;
-- add a block here when a service gets a database. A volume
-- created before a block was added does not get it: create the role and
-- database by hand, or start over with `docker compose down -v`.
-- Development credentials only.

CREATE ROLE identity LOGIN PASSWORD 'identity';
CREATE DATABASE identity OWNER identity;

CREATE ROLE chat LOGIN PASSWORD 'chat';
CREATE DATABASE chat OWNER chat;

CREATE ROLE billing LOGIN PASSWORD 'billing';
CREATE DATABASE billing OWNER billing;

CREATE ROLE analytics LOGIN PASSWORD 'analytics';
CREATE DATABASE analytics OWNER analytics;
