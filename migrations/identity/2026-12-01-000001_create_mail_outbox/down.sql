DROP TABLE mailOutbox;
