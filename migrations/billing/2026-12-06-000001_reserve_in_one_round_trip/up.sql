-- billing (metering): a quota reservation in one statement, so one round
-- trip instead of six (BEGIN, the row lock, the reads, the insert, COMMIT).
--
-- A single SQL statement cannot do it safely: its snapshot is taken before
-- it waits for the usage row's lock, so the sum of reservations would miss
-- the one the lock's previous holder just committed. In PL/pgSQL (VOLATILE,
-- READ COMMITTED) each statement takes a new snapshot: the sum below runs
-- after the lock is held and sees every reservation committed before it.
--
-- Only the common case is done here: the user's row exists and is not of an
-- earlier month. Otherwise the answer is 'prepare' and the service starts
-- the row (a user billing has not heard of yet) or rolls it over, then
-- calls again. The commit skips the WAL flush: a reservation lost to a
-- crash is harmless (the call it held quota for settles from its event).
--
-- Answers one row: outcome 'held' (with what remains after it, the plan's
-- name and its message limit), 'quota_exceeded' (with what remains),
-- 'message_limit', or 'prepare'.
CREATE FUNCTION reserve_tokens(
  reservation_id UUID,
  for_user UUID,
  wanted INTEGER,
  conversation_messages BIGINT,
  current_month DATE,
  now_at TIMESTAMP,
  expires_at TIMESTAMP,
  granting TEXT[],
  free_plan TEXT
) RETURNS TABLE (
  outcome TEXT,
  remaining BIGINT,
  plan_name TEXT,
  max_messages_per_conversation INTEGER
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  quota BIGINT;
  used BIGINT;
  row_month DATE;
  held BIGINT;
  plan_row RECORD;
  free_left BIGINT;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  SELECT u.monthlyQuota, COALESCE(u.tokensUsed, 0), u.billingMonth
    INTO quota, used, row_month
    FROM usageTracking u WHERE u.userId = for_user FOR UPDATE;
  IF NOT FOUND OR row_month < current_month THEN
    RETURN QUERY SELECT 'prepare'::TEXT, NULL::BIGINT, NULL::TEXT, NULL::INTEGER;
    RETURN;
  END IF;
  -- A new snapshot: every reservation committed before the lock was ours.
  SELECT COALESCE(sum(r.tokens), 0) INTO held
    FROM tokenReservations r WHERE r.userId = for_user AND r.expiresAt > now_at;
  SELECT p.name, p.maxMessagesPerConversation INTO plan_row
    FROM subscriptions s JOIN plans p ON p.id = s.planId
    WHERE s.userId = for_user AND s.status = ANY (granting) LIMIT 1;
  IF NOT FOUND THEN
    SELECT p.name, p.maxMessagesPerConversation INTO plan_row
      FROM plans p WHERE p.name = free_plan;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'the % plan is missing', free_plan;
    END IF;
  END IF;
  IF conversation_messages IS NOT NULL
     AND plan_row.maxMessagesPerConversation IS NOT NULL
     AND conversation_messages + 2 > plan_row.maxMessagesPerConversation THEN
    RETURN QUERY SELECT 'message_limit'::TEXT, NULL::BIGINT, NULL::TEXT, NULL::INTEGER;
    RETURN;
  END IF;
  free_left := quota - used - held;
  IF wanted > free_left THEN
    RETURN QUERY SELECT 'quota_exceeded'::TEXT, GREATEST(free_left, 0), NULL::TEXT, NULL::INTEGER;
    RETURN;
  END IF;
  INSERT INTO tokenReservations (id, userId, billingMonth, tokens, expiresAt, createdAt)
    VALUES (reservation_id, for_user, row_month, wanted, expires_at, now_at);
  RETURN QUERY SELECT 'held'::TEXT, free_left - wanted, plan_row.name::TEXT,
    plan_row.maxMessagesPerConversation;
END;
$$;
