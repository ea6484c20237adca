# The workload's routes (same paths, statuses and bodies as the Python sandbox's front).
class ApiController < ActionController::API
  private

  def header_ms(name)
    Float(request.headers[name] || "0")
  rescue ArgumentError
    0.0
  end

  def vista_wait
    ms = header_ms("X-Capacity-Wait-Ms")
    sleep(ms / 1000.0) if ms > 0
  end

  def burn
    CapacitySandbox.burn(header_ms("X-Capacity-Cpu-Ms"))
  end

  def error(status, detail)
    titles = { 400 => "Bad Request", 404 => "Not Found", 409 => "Conflict", 422 => "Unprocessable Entity" }
    render status: status, json: { errors: [{ status: status.to_s, title: titles.fetch(status, "Error"), detail: detail }] }
  end

  # The raw body as a JSON object ({} when empty and optional); nil after rendering a 400.
  def json_body(required:)
    raw = request.raw_post.to_s
    if raw.strip.empty?
      return {} unless required
      error(400, "request body must be a JSON object")
      return nil
    end
    body = JSON.parse(raw)
    return body if body.is_a?(Hash)
    error(400, "request body must be a JSON object")
    nil
  rescue JSON::ParserError
    error(400, "request body is not valid JSON")
    nil
  end

  def digits(value)
    return value.to_s if value.is_a?(Integer) && value >= 0
    return value if value.is_a?(String) && value.match?(/\A\d{1,20}\z/)
    nil
  end

  def status_doc(dfn, patient)
    attrs = if patient.nil? || patient.confirmed_at.nil?
              { demographicsNeedsUpdate: true, demographicsConfirmedAt: nil, confirmation: {} }
            else
              { demographicsNeedsUpdate: false, demographicsConfirmedAt: patient.confirmed_at.utc.iso8601,
                confirmation: JSON.parse(patient.confirmation || "{}") }
            end
    { data: { id: dfn, type: "patient_demographics_status",
              attributes: { patientDfn: dfn, sta3n: params_sta3n }.merge(attrs) } }
  end

  def params_sta3n
    request.path_parameters[:sta3n]
  end
end

class HealthController < ApiController
  def show
    render json: { status: "ok" }
  end
end

class DemographicsController < ApiController
  # GET: read the patient row (the request now holds a connection), ask VistA, render.
  def show
    dfn = digits(request.query_parameters["patientDfn"])
    return error(400, "query parameter patientDfn must be digits") if dfn.nil?
    patient = Patient.find_by(dfn: dfn)
    vista_wait
    burn
    render json: status_doc(dfn, patient)
  end

  # POST: read the patient, confirm in VistA, update the row.
  def update
    body = json_body(required: true)
    return if body.nil?
    dfn = digits(body["patientDfn"])
    return error(422, "patientDfn must be a string of digits") if dfn.nil?
    payload = body.fetch("demographicsConfirmationPayload", {})
    return error(422, "demographicsConfirmationPayload must be a JSON object") unless payload.is_a?(Hash)
    patient = Patient.find_by(dfn: dfn) || Patient.new(dfn: dfn, sta3n: params_sta3n)
    vista_wait
    patient.update!(confirmed_at: Time.now.utc, confirmation: JSON.generate(payload))
    burn
    render json: status_doc(dfn, patient)
  end
end

class AppointmentsController < ApiController
  # Insert a summary row and enqueue the Sidekiq job that reads the appointment and writes a result.
  def summary
    return if json_body(required: false).nil?
    ien = request.path_parameters[:ien]
    appt = Appointment.find_by(ien: ien)
    return error(404, "appointment #{ien} not found") if appt.nil?
    vista_wait
    row = AppointmentSummary.create!(ien: appt.ien)
    jid = SummaryJob.perform_async(row.id, header_ms("X-Capacity-Job-Wait-Ms"), header_ms("X-Capacity-Job-Cpu-Ms"))
    burn
    render status: 202, json: { data: { id: ien, type: "appointment_summary",
                                        attributes: { jobId: jid.to_s, status: "queued" } } }
  end

  # Update the appointment under a row lock, once (a repeat is 409); with hot rows, also one of K
  # shared counter rows (a clinic's daily count), whose lock every check-in in the cluster queues for.
  def checkin
    return if json_body(required: false).nil?
    ien = request.path_parameters[:ien]
    return error(404, "appointment #{ien} not found") unless Appointment.exists?(ien: ien)
    vista_wait
    outcome = Appointment.transaction do
      appt = Appointment.lock.find_by(ien: ien)
      next :gone if appt.nil?
      next :repeat unless appt.checked_in_at.nil?
      if CapacitySandbox::HOT_ROWS > 0
        ClinicCounter.where(id: appt.ien.to_i % CapacitySandbox::HOT_ROWS).update_all("checkins = checkins + 1")
      end
      burn
      appt.update!(checked_in_at: Time.now.utc)
      appt
    end
    return error(404, "appointment #{ien} not found") if outcome == :gone
    return error(409, "appointment #{ien} is already checked in") if outcome == :repeat
    render status: 201, json: { data: { id: ien, type: "appointment_checkin",
                                        attributes: { status: "CHECKED_IN", sta3n: outcome.sta3n, clinic: outcome.clinic } } }
  end
end
