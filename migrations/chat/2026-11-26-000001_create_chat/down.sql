DROP TABLE inbox;
DROP TABLE outbox;
DROP TABLE aiProviders;
DROP TABLE tokenUsage;
DROP FUNCTION create_tokenusage_partitions(DATE, INTEGER);
DROP TABLE messages;
DROP TABLE conversations;
