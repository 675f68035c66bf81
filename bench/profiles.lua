-- wrk script for the demo site ceiling: cycles through every profile page
-- (/profile/1 .. /profile/$PROFILES), which are 95% of the pages a crawl
-- fetches, instead of hammering one URL the site might answer from cache.
local profiles = tonumber(os.getenv("PROFILES") or "20000")
local next_id = 0

request = function()
    next_id = next_id % profiles + 1
    return wrk.format("GET", "/profile/" .. next_id)
end
