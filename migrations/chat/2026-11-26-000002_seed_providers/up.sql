-- The three providers, their list prices per 1K tokens (USD) and limits.
-- Idempotent: re-running changes nothing an operator has edited.
INSERT INTO aiProviders (name, inputTokenCostPer1k, outputTokenCostPer1k, requestsPerMinute, requestsPerDay, supportedModels)
VALUES
  ('openai',    0.00250000, 0.01000000, 500, 10000, '["gpt-4o", "gpt-4o-mini", "gpt-4", "gpt-3.5-turbo"]'),
  ('anthropic', 0.00300000, 0.01500000, 50,  5000,  '["claude-3-opus", "claude-3-sonnet", "claude-3-5-sonnet-latest", "claude-3-5-haiku-latest"]'),
  ('google',    0.00125000, 0.00500000, 60,  1500,  '["gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.0-flash"]')
ON CONFLICT (name) DO NOTHING;
