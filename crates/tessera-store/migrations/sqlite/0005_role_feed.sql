-- Role changes on the change feed (SQLite). One server owns a SQLite database and
-- forgets cached roles itself when it changes them: there is nobody to notify. This
-- version exists so both backends keep the same numbers.
SELECT 1;
