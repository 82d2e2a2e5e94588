DROP TABLE mangopay_refunds;
DROP TABLE mangopay_pay_ins;
DROP TABLE mangopay_card_registrations;
DROP TABLE mangopay_cards;
