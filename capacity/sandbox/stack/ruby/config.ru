# The Rack app one Puma process serves. The sandbox's front (the load balancer) has already parsed
# and validated the workload request; it calls /call/<endpoint> with the drawn service time:
#   wait_ms  downstream (VistA) wait, slept with the GVL released so threads really overlap
#   cpu_ms   real CPU work          status  the status to answer (500: simulated failure)
#   job_wait_ms / job_cpu_ms  for appointment_summary: the Sidekiq job pushed to queue "default"
#   leak_kb  memory kept for good (a leak the memory guard should see)
require "json"
require "rack"
require_relative "worker"

Sidekiq.configure_client do |config|
  config.redis = { url: ENV.fetch("REDIS_URL"), size: Integer(ENV.fetch("CAPACITY_PUMA_THREADS")) + 1 }
end

LEAKED = []
JSON_TYPE = { "content-type" => "application/json" }.freeze

def number(params, key)
  Float(params.fetch(key, "0"))
end

app = lambda do |env|
  req = Rack::Request.new(env)
  path = req.path_info
  next [200, JSON_TYPE, ['{"status":"ok"}']] if path == "/health"
  next [404, JSON_TYPE, ['{"error":"not found"}']] unless path.start_with?("/call/")

  params = req.GET
  wait_ms = number(params, "wait_ms")
  sleep(wait_ms / 1000.0) if wait_ms > 0
  CapacitySandbox.burn(number(params, "cpu_ms"))
  leak_kb = number(params, "leak_kb")
  LEAKED << ("\x01" * (leak_kb * 1024).to_i) if leak_kb > 0
  status = Integer(params.fetch("status", "200"))
  body = { endpoint: path.delete_prefix("/call/") }
  if status == 200 && params.key?("job_wait_ms")
    body[:jid] = SummaryJob.perform_async(number(params, "job_wait_ms"), number(params, "job_cpu_ms"),
                                          params["job_fail"] == "1")
  end
  [status, JSON_TYPE, [JSON.generate(body)]]
end

run app
