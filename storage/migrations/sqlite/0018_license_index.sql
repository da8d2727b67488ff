-- One licence number, one open or approved application. `license_index` is the licence
-- number's blind index (HMAC under the data key's index key, as phones have); `live_license`
-- holds it while the application is pending or approved (NULL once rejected, withdrawn or its
-- account erased), under a unique index. Rows stored before are filled in by the server at
-- start-up; a duplicate already stored stays (its `live_license` stays NULL). Never edit once
-- applied.
ALTER TABLE merchant_applications ADD COLUMN license_index TEXT NULL;
ALTER TABLE merchant_applications ADD COLUMN live_license TEXT NULL;
CREATE UNIQUE INDEX applications_live_license ON merchant_applications (live_license);
