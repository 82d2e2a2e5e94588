DROP TABLE mangopay_ubos;
DROP TABLE mangopay_ubo_declarations;
ALTER TABLE mangopay_documents DROP COLUMN submission_requested_at;
