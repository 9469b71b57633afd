-- TokenUsageByModel at scale (docs/benchmarks.md): a month's usage per
-- model, kept by the writes of the tokenUsage facts (store::apply, in the
-- transaction that inserts the fact, only when it is new), so the query
-- reads a dozen rows instead of a month of facts (~770k at 10 M facts).
CREATE TABLE tokenUsageMonthly (
  billingMonth DATE NOT NULL,
  model VARCHAR(100) NOT NULL,
  usageCount BIGINT NOT NULL DEFAULT 0,
  totalTokens BIGINT NOT NULL DEFAULT 0,
  costUsd NUMERIC(20, 6) NOT NULL DEFAULT 0,
  PRIMARY KEY (billingMonth, model)
);
INSERT INTO tokenUsageMonthly (billingMonth, model, usageCount, totalTokens, costUsd)
SELECT billingMonth, model, count(*), sum(totalTokens), sum(costUsd) FROM tokenUsage GROUP BY 1, 2;
