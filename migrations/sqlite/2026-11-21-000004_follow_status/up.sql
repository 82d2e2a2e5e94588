-- Objects followed until Mangopay settles them (pay-outs CREATED, recipients PENDING): the time
-- of the next status check, NULL once settled or no longer followed (src/sync/follow.rs).
ALTER TABLE mangopay_pay_outs ADD COLUMN follow_at TIMESTAMP;
ALTER TABLE mangopay_recipients ADD COLUMN follow_at TIMESTAMP;
CREATE INDEX mangopay_pay_outs_follow_idx ON mangopay_pay_outs (follow_at)
    WHERE follow_at IS NOT NULL;
CREATE INDEX mangopay_recipients_follow_idx ON mangopay_recipients (follow_at)
    WHERE follow_at IS NOT NULL;
-- Objects already waiting owe a status check now: the worker's sweep picks them up.
UPDATE mangopay_pay_outs SET follow_at = CURRENT_TIMESTAMP
    WHERE mangopay_id IS NOT NULL AND status = 'CREATED';
UPDATE mangopay_recipients SET follow_at = CURRENT_TIMESTAMP
    WHERE mangopay_id IS NOT NULL AND status = 'PENDING';
