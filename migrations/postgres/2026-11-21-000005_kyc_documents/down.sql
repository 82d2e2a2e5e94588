DROP TABLE mangopay_pages;
DROP TABLE mangopay_documents;
