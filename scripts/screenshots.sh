#!/usr/bin/env bash
# Retakes the README's screenshots, docs/screenshots/analyze.png and docs/screenshots/steer.png, from the app with
# its default model (models/steering-lab-base) in headless Chromium: ReadmeScreenshotsProfileTest, which runs only
# with LAB_SCREENSHOTS=1 (so ./test.sh leaves docs/ alone). Needs what ./test.sh sets up (PostgreSQL with the steering_test database,
# /usr/bin/chromium and /usr/bin/chromedriver); extra arguments go to Maven (e.g. -o).
# LAB_TEST_DB_URL and QUARKUS_HTTP_TEST_PORT choose another test database or port.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
./db/ensure-postgres.sh
LAB_SCREENSHOTS=1 ./mvnw -B -q test-compile surefire:test@quarkus-profile-tests \
  -Dtest=ReadmeScreenshotsProfileTest "$@"
ls -l docs/screenshots/analyze.png docs/screenshots/steer.png
