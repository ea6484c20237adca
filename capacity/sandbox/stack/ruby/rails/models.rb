# The sandbox's records and its Sidekiq job (schema.sql holds the tables).
class ApplicationRecord < ActiveRecord::Base
  self.abstract_class = true
end

class Patient < ApplicationRecord; end
class Appointment < ApplicationRecord
  self.primary_key = "ien"
end
class AppointmentSummary < ApplicationRecord; end
class SummaryResult < ApplicationRecord; end
class ClinicCounter < ApplicationRecord; end

class SummaryJob
  include Sidekiq::Worker
  sidekiq_options queue: "default", retry: false

  # Reads the appointment, waits the job's downstream time, writes the result row.
  def perform(summary_id, wait_ms, cpu_ms)
    summary = AppointmentSummary.find(summary_id)
    appt = Appointment.find(summary.ien)
    sleep(wait_ms / 1000.0) if wait_ms > 0
    CapacitySandbox.burn(cpu_ms)
    SummaryResult.create!(appointment_summary_id: summary.id, ien: appt.ien, clinic: appt.clinic)
  end
end
