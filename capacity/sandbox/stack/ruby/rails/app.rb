# The sandbox's Rails API (Rails 6.1: ActionController::API + ActiveRecord on PostgreSQL), booted by
# config.ru in each Puma process and by Sidekiq (-r) in each worker. The Python front forwards every
# workload request unchanged, adding the drawn VistA wait and CPU work as headers:
#   X-Capacity-Wait-Ms  downstream (VistA) wait, slept with the GVL released, outside the database
#                       but holding the request's ActiveRecord connection (as a Rails app does once
#                       it has queried: the connection goes back to the pool at the request's end)
#   X-Capacity-Cpu-Ms   real CPU work (rendering, callbacks); a check-in burns it inside its transaction
#   X-Capacity-Job-Wait-Ms / X-Capacity-Job-Cpu-Ms  the appointment summary's Sidekiq job
# ENV: DATABASE_URL (with ?pool=), REDIS_URL, CAPACITY_HOT_ROWS (0: off).
require "json"
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "pg"
require "sidekiq"
require_relative "../burn"

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

module CapacitySandbox
  HOT_ROWS = Integer(ENV.fetch("CAPACITY_HOT_ROWS", "0"))

  class Application < Rails::Application
    config.root = __dir__
    config.eager_load = true
    config.api_only = true
    config.secret_key_base = "capacity-sandbox-" * 4
    config.logger = ActiveSupport::Logger.new($stdout)
    config.log_level = :warn
    config.active_record.schema_format = :sql
    config.active_record.dump_schema_after_migration = false
    config.hosts.clear
  end
end
