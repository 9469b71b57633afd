DROP TABLE inbox;
DROP TABLE outbox;
DROP TABLE passwordResets;
DROP TABLE emailVerifications;
DROP TABLE sessionRevocations;
DROP TABLE sessionRotatedTokens;
DROP TABLE sessions;
DROP TABLE users;
