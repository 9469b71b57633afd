ALTER TABLE deletedUsers DROP COLUMN tokensUsed, DROP COLUMN costUsd;
