DROP TABLE apiKeys;
