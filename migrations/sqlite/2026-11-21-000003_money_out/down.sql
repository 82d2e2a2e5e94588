DROP TABLE mangopay_pay_outs;
DROP TABLE mangopay_transfers;
DROP TABLE mangopay_recipients;
DROP TABLE mangopay_bank_accounts;
DROP TABLE mangopay_wallets;
