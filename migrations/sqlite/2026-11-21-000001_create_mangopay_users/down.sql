DROP TABLE mangopay_legal_users;
DROP TABLE mangopay_natural_users;
DROP TABLE mangopay_users;
