DROP TABLE tokenUsageMonthly;
