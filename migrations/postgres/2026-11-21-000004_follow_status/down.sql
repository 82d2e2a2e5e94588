DROP INDEX mangopay_recipients_follow_idx;
DROP INDEX mangopay_pay_outs_follow_idx;
ALTER TABLE mangopay_recipients DROP COLUMN follow_at;
ALTER TABLE mangopay_pay_outs DROP COLUMN follow_at;
