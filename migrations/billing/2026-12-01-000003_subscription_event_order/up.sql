-- billing (payments): the Stripe event a subscription row was last written
-- from, so an older event arriving late never overwrites newer state.
--
-- Stripe's subscription statuses onto the seed's CHECK (active, canceled,
-- past_due, unpaid, paused), mapped before storing:
--   trialing            -> active   (the plan's quota applies during a trial;
--                                    trialEndsAt says when it ends)
--   incomplete          -> unpaid   (the first payment has not gone through:
--                                    the plan is not granted yet)
--   incomplete_expired  -> canceled (the first payment never came)
-- A user's plan is the subscription's while its status is active or past_due
-- (Stripe is retrying a renewal's payment); Free otherwise.
SET lock_timeout = '10s';

ALTER TABLE subscriptions ADD COLUMN stripeEventCreatedAt TIMESTAMP;
