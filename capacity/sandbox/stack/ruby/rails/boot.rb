# Boots the Rails application: config.ru (Puma) and Sidekiq (-r) both require this.
require_relative "app"

CapacitySandbox::Application.initialize!

require_relative "models"
require_relative "controllers"

CapacitySandbox::Application.routes.draw do
  get "/health", to: "health#show"
  vista = "/api/v1/vista-sites/:sta3n"
  get "#{vista}/patient_demographics_status", to: "demographics#show", constraints: { sta3n: /\d+/ }
  post "#{vista}/patient_demographics_status", to: "demographics#update", constraints: { sta3n: /\d+/ }
  ["", vista].each do |prefix|
    post "#{prefix}/appointments/:ien/summary", to: "appointments#summary"
    post "#{prefix}/appointments/:ien/checkins", to: "appointments#checkin"
  end
end
