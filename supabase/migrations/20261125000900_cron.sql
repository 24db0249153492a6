-- pg_cron only ticks; the work is in the idempotent functions above. (pg_cron 1.4 has minute
-- granularity, which is all these need.)
select cron.schedule('narrative-sweeper', '* * * * *', 'select private.sweep()');
select cron.schedule('narrative-weekly-refresh', '*/10 * * * *', 'select private.enqueue_weekly_refresh()');
