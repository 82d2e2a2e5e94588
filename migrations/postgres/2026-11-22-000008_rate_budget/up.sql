-- The rate budget shared by every process of one Mangopay client (src/client/budget.rs): one
-- row per batch of calls a process took, at the database's clock in milliseconds, kept as long
-- as the longest window.
CREATE TABLE mangopay_rate_budget (
    id BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL,
    granted_at_ms BIGINT NOT NULL,
    calls INTEGER NOT NULL CHECK (calls > 0)
);
CREATE INDEX mangopay_rate_budget_window_idx ON mangopay_rate_budget (client_id, granted_at_ms);
