# The Sidekiq job of the sandbox: an appointment summary that waits its job time and burns a little
# CPU, like a render plus a downstream call. Loaded by both Sidekiq (-r) and the Rack app (to push).
require "sidekiq"

# redis-rb 4.8 warns about calls Sidekiq 6.4 makes the old way; the warnings are noise here.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

require_relative "burn"

class SummaryJob
  include Sidekiq::Worker
  sidekiq_options queue: "default", retry: false

  def perform(wait_ms, cpu_ms, fail = false)
    sleep(wait_ms / 1000.0) if wait_ms > 0
    CapacitySandbox.burn(cpu_ms)
    raise "simulated job failure" if fail
  end
end
