DROP INDEX capillary_sessions_expires;
DROP TABLE capillary_sessions;
DROP TABLE capillary_brands;
