DROP TABLE mangopay_rate_budget;
