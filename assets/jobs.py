"""Jobs, schedules and sensors that span layers (a layer's own jobs live beside its assets as ``JOBS``)."""

import dagster as dg

raw_daily_job = dg.define_asset_job(
    "raw_daily_job",
    selection=dg.AssetSelection.groups("raw") - dg.AssetSelection.assets(["raw", "items"], ["raw", "users"]),
)

# One day of raw logs and every data layer downstream of them, in one run. Model training is its own job
# (models_job; the automation sensor retrains after the data refresh), as `recforge build` leaves it out.
everything_job = dg.define_asset_job(
    "everything_job", selection=dg.AssetSelection.all() - dg.AssetSelection.groups("models")
)

raw_daily_schedule = dg.build_schedule_from_partitioned_job(raw_daily_job, hour_of_day=2, minute_of_hour=0)

downstream_automation_sensor = dg.AutomationConditionSensorDefinition(
    "downstream_automation_sensor", target=dg.AssetSelection.all()
)

JOBS = [raw_daily_job, everything_job]
SCHEDULES = [raw_daily_schedule]
SENSORS = [downstream_automation_sensor]
