DROP TABLE pendingSends;
DROP TABLE chatReplicas;
