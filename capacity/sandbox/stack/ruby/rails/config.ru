# One app task's Rails application under Puma. Beside it, a tiny TCP endpoint (its own Ruby thread,
# not a Puma thread, so it answers while every request thread is busy) reports the ActiveRecord
# pool as the collector reads it: {size, connections, busy, dead, idle, waiting, checkout_timeout}.
require "socket"
require_relative "boot"

Sidekiq.configure_client do |config|
  config.redis = { url: ENV.fetch("REDIS_URL"), size: Integer(ENV.fetch("CAPACITY_PUMA_THREADS")) + 1 }
end

stats_server = TCPServer.new("127.0.0.1", Integer(ENV.fetch("CAPACITY_POOL_STATS_PORT")))
Thread.new do
  loop do
    client = stats_server.accept
    begin
      client.write(JSON.generate(ActiveRecord::Base.connection_pool.stat))
    rescue StandardError => e
      client.write(JSON.generate({ error: e.class.name }))
    ensure
      client.close
    end
  end
end

run CapacitySandbox::Application
