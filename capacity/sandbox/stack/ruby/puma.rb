# Puma configuration of one sandbox app task (one ECS task's app container).
# The Python stack passes the per-process values in the environment; the bind address comes on the
# command line (-b tcp://127.0.0.1:PORT). Single mode: the thread pool is the capacity under test.
threads_count = Integer(ENV.fetch("CAPACITY_PUMA_THREADS"))
threads threads_count, threads_count
workers 0
environment "production"
rackup ENV.fetch("CAPACITY_RACKUP", File.join(__dir__, "config.ru"))
# The control app is what the Datadog Puma check reads (/stats: backlog, running, pool_capacity).
activate_control_app "tcp://127.0.0.1:#{Integer(ENV.fetch('CAPACITY_PUMA_CONTROL_PORT'))}", { no_token: true }
quiet

# Puma 5.6 keeps a thread waiting up to 0.2 s (FAST_TRACK_KA_TIMEOUT) for a keep-alive client's next
# request. Behind the front's persistent connections that makes idle threads look busy: the pool
# read 0 free threads at 75% load, and saturation came ~12% below threads / service time. With no
# wait, a thread is busy only while it serves, which is what the capacity formula and the pool
# guard assume; requests beyond the threads then queue in Puma's backlog, as on a busy task.
require "puma/const"
Puma::Const.send(:remove_const, :FAST_TRACK_KA_TIMEOUT)
Puma::Const.const_set(:FAST_TRACK_KA_TIMEOUT, 0)
