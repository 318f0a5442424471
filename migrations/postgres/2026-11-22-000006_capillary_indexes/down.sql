DROP INDEX challenges_subject_latest;
