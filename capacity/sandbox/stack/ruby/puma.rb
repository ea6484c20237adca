# Puma configuration of one sandbox app task (one ECS task's app container).
# The Python stack passes the per-process values in the environment; the bind address comes on the
# command line (-b tcp://127.0.0.1:PORT). Single mode: the thread pool is the capacity under test.
threads_count = Integer(ENV.fetch("CAPACITY_PUMA_THREADS"))
threads threads_count, threads_count
workers 0
environment "production"
rackup File.join(__dir__, "config.ru")
# The control app is what the Datadog Puma check reads (/stats: backlog, running, pool_capacity).
activate_control_app "tcp://127.0.0.1:#{Integer(ENV.fetch('CAPACITY_PUMA_CONTROL_PORT'))}", { no_token: true }
quiet
