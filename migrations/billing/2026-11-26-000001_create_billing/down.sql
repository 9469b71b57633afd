SET lock_timeout = '10s';
DROP TABLE inbox;
DROP TABLE outbox;
DROP TABLE deletedUsers;
DROP TABLE tokenReservations;
DROP TABLE usageTracking;
DROP TABLE plans;
