-- The three plans (ARCHITECTURE.md: `make run` seeds plans). Idempotent: a
-- plan that exists, perhaps edited by an operator, is left as it is. The ids
-- are fixed so every environment names a plan the same way.
-- monthlyTokenQuota is per calendar month (UTC); a NULL limit is unlimited.
SET lock_timeout = '10s';

INSERT INTO plans (id, name, monthlyPrice, yearlyPrice, monthlyTokenQuota,
                   maxConversations, maxMessagesPerConversation, features)
VALUES
  ('01a216c1-bf8e-7d99-b752-cb2d286dd79a', 'Free', 0.00, NULL, 100000, 20, 50,
   '["standard_models", "conversation_history"]'),
  ('01a216c1-bf8f-7ea8-964c-3886ed72bdbe', 'Plus', 20.00, 200.00, 2000000, 200, 500,
   '["standard_models", "advanced_models", "conversation_history", "conversation_export", "email_support"]'),
  ('01a216c1-bf90-7d92-bc24-57cfe45f9fab', 'Pro', 50.00, 500.00, 10000000, NULL, NULL,
   '["standard_models", "advanced_models", "conversation_history", "conversation_export", "priority_support"]')
ON CONFLICT (name) DO NOTHING;
