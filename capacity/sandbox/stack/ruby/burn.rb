# Real CPU work for the sandbox's Ruby processes (the Rack app, the Rails app, their Sidekiq jobs).
module CapacitySandbox
  # Busy-loop for ms of wall time: real CPU the container's CPU metric can see.
  def self.burn(ms)
    return if ms <= 0
    stop = Process.clock_gettime(Process::CLOCK_MONOTONIC) + ms / 1000.0
    x = 0
    x += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < stop
  end
end
