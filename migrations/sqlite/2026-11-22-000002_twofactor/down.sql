DROP INDEX challenges_numeric_id;
ALTER TABLE challenges DROP COLUMN change_request_id;
ALTER TABLE challenges DROP COLUMN numeric_id;
DROP TABLE twofactor_configs;
