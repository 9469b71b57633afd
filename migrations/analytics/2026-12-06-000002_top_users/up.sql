-- TopUsers at 1 M users (docs/benchmarks.md): the live conversations'
-- tokens per user and UTC month of createdAt, in descending order per
-- month, so the query finds the top users of a window without grouping
-- every conversation in it (store::queries::top_users: the threshold
-- algorithm over the window's months, each candidate's exact figures read
-- from its own conversations by idx_conversations_user_window). Kept by
-- statement-level triggers on conversations, as the aggregates of
-- 2026-12-06-000001_query_aggregates are.
SET lock_timeout = '10s';

CREATE TABLE conversationsUserMonthly (
  month DATE NOT NULL,
  userId UUID NOT NULL,
  conversations BIGINT NOT NULL DEFAULT 0,
  tokens BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (month, userId)
);
CREATE INDEX idx_conversationsUserMonthly_order ON conversationsUserMonthly(month, tokens DESC, userId)
  WHERE conversations > 0;
CREATE INDEX idx_conversations_user_window ON conversations(userId, createdAt) INCLUDE (tokenCount)
  WHERE deletedAt IS NULL;

INSERT INTO conversationsUserMonthly (month, userId, conversations, tokens)
SELECT date_trunc('month', createdAt)::date, userId, count(*), sum(tokenCount) FROM conversations
WHERE deletedAt IS NULL AND createdAt IS NOT NULL GROUP BY 1, 2;

CREATE FUNCTION conversations_user_monthly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO conversationsUserMonthly AS c (month, userId, conversations, tokens)
    SELECT date_trunc('month', createdAt)::date, userId, sum(sign), sum(sign * tokenCount) FROM (SELECT r.*, 1 AS sign FROM new_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1, 2 HAVING sum(sign) <> 0 OR sum(sign * tokenCount) <> 0
    ORDER BY 1, 2
    ON CONFLICT (month, userId) DO UPDATE SET conversations = c.conversations + EXCLUDED.conversations,
      tokens = c.tokens + EXCLUDED.tokens;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO conversationsUserMonthly AS c (month, userId, conversations, tokens)
    SELECT date_trunc('month', createdAt)::date, userId, sum(sign), sum(sign * tokenCount) FROM (SELECT r.*, 1 AS sign FROM new_rows r UNION ALL SELECT r.*, -1 FROM old_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1, 2 HAVING sum(sign) <> 0 OR sum(sign * tokenCount) <> 0
    ORDER BY 1, 2
    ON CONFLICT (month, userId) DO UPDATE SET conversations = c.conversations + EXCLUDED.conversations,
      tokens = c.tokens + EXCLUDED.tokens;
  ELSE
    INSERT INTO conversationsUserMonthly AS c (month, userId, conversations, tokens)
    SELECT date_trunc('month', createdAt)::date, userId, sum(sign), sum(sign * tokenCount) FROM (SELECT r.*, -1 AS sign FROM old_rows r) d
    WHERE deletedAt IS NULL AND createdAt IS NOT NULL
    GROUP BY 1, 2 HAVING sum(sign) <> 0 OR sum(sign * tokenCount) <> 0
    ORDER BY 1, 2
    ON CONFLICT (month, userId) DO UPDATE SET conversations = c.conversations + EXCLUDED.conversations,
      tokens = c.tokens + EXCLUDED.tokens;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER conversations_user_monthly_insert AFTER INSERT ON conversations
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conversations_user_monthly();
CREATE TRIGGER conversations_user_monthly_update AFTER UPDATE ON conversations
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conversations_user_monthly();
CREATE TRIGGER conversations_user_monthly_delete AFTER DELETE ON conversations
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION conversations_user_monthly();
