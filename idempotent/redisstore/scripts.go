package redisstore

import "github.com/redis/go-redis/v9"

// Field names of a record's hash: those of dynamostore's default attribute names (and of Powertools for AWS
// Lambda), so operators recognise a record whichever store holds it. The record ID is the key itself.
const (
	fieldStatus     = "status"
	fieldExpiration = "expiration"             // end of retention, epoch seconds rounded up
	fieldLease      = "in_progress_expiration" // end of an INPROGRESS claim's lease, epoch milliseconds rounded up
	fieldValidation = "validation"             // payload fingerprint
	fieldOwner      = "owner"                  // token of the claiming invocation (kept on the COMPLETED record)
	fieldData       = "data"                   // the response, as it is or gzip-compressed
	fieldEncoding   = "data_encoding"          // only when data is not the response as it is: gzip or too-large
)

// recordFields is the order in which Get and a failed claim return a record's fields.
var recordFields = []string{fieldStatus, fieldExpiration, fieldLease, fieldValidation, fieldOwner, fieldData, fieldEncoding}

// Results of the claim script. A live record comes back as an array of recordFields instead.
const (
	claimWon = 0 // the record was absent, expired or (with takeover) an ended lease: the claim is written
	claimOwn = 1 // the live record is INPROGRESS with this very owner: an earlier attempt of this claim wrote it
)

// Results of the complete and release scripts.
const (
	fenceOK         = 0 // written (complete), deleted or absent (release)
	fenceAbsent     = 1 // complete only: there is no record
	fenceCompleted  = 2 // the record is COMPLETED (and, for complete, not exactly this completion)
	fenceOtherOwner = 3 // the record is INPROGRESS and held by another owner
)

// claimScript writes an INPROGRESS record unless a live one holds the key, all in one atomic step on the server.
// Expiry and the lease are judged at the engine's instant (ARGV 1-2), never the server's clock, so an injected
// clock drives them; the server's own expiry (PEXPIRE) only reclaims the memory of records past retention.
//
//	KEYS[1] the record's key
//	ARGV    now (epoch s), now (epoch ms), takeover (1|0), owner, fingerprint, lease end (epoch ms, rounded up),
//	        expiration (epoch s, rounded up), time to live (ms: expiration - now)
//
// A record is expired when expiration <= now (s); its lease has ended when in_progress_expiration <= now (ms):
// the comparisons of Record.Expired and Record.LeaseEnded on the rounded-up stored values.
var claimScript = redis.NewScript(`
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'status', 'expiration', 'in_progress_expiration', 'owner')
if cur[1] then
  local live = tonumber(cur[2]) > tonumber(ARGV[1])
  if live and ARGV[3] == '1' and cur[1] == 'INPROGRESS' and tonumber(cur[3]) <= tonumber(ARGV[2]) then
    live = false
  end
  if live then
    if cur[1] == 'INPROGRESS' and cur[4] == ARGV[4] then
      return 1
    end
    return redis.call('HMGET', key, 'status', 'expiration', 'in_progress_expiration', 'validation', 'owner', 'data', 'data_encoding')
  end
  redis.call('DEL', key)
end
redis.call('HSET', key, 'status', 'INPROGRESS', 'expiration', ARGV[7], 'in_progress_expiration', ARGV[6],
  'validation', ARGV[5], 'owner', ARGV[4])
redis.call('PEXPIRE', key, ARGV[8])
return 0
`)

// completeScript replaces the INPROGRESS record held by the owner with the COMPLETED one. The server's expiry moves
// by exactly as much as the record's expiration did (the key's remaining time plus the difference), so it stays
// tied to the engine's clock without comparing it with the server's. A COMPLETED record that already is exactly
// this completion (an earlier attempt applied, its answer lost) counts as written.
//
//	KEYS[1] the record's key
//	ARGV    owner, expiration (epoch s, rounded up), fingerprint, data, data encoding ('' | gzip | too-large)
var completeScript = redis.NewScript(`
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'status', 'owner', 'expiration', 'validation', 'data', 'data_encoding')
if not cur[1] then
  return 1
end
if cur[1] == 'INPROGRESS' and cur[2] == ARGV[1] then
  local ttl = redis.call('PTTL', key)
  redis.call('HDEL', key, 'in_progress_expiration', 'data', 'data_encoding')
  redis.call('HSET', key, 'status', 'COMPLETED', 'expiration', ARGV[2], 'validation', ARGV[3])
  if ARGV[5] ~= 'too-large' then
    redis.call('HSET', key, 'data', ARGV[4])
  end
  if ARGV[5] ~= '' then
    redis.call('HSET', key, 'data_encoding', ARGV[5])
  end
  if ttl > 0 then
    redis.call('PEXPIRE', key, math.max(1, ttl + (tonumber(ARGV[2]) - tonumber(cur[3])) * 1000))
  end
  return 0
end
if cur[1] == 'COMPLETED' and cur[2] == ARGV[1] and cur[3] == ARGV[2] and cur[4] == ARGV[3]
    and (cur[5] or '') == ARGV[4] and (cur[6] or '') == ARGV[5] then
  return 0
end
if cur[1] ~= 'INPROGRESS' then
  return 2
end
return 3
`)

// releaseScript deletes the INPROGRESS record held by the owner. An absent record is released already (an earlier
// attempt deleted it, its answer lost).
//
//	KEYS[1] the record's key
//	ARGV    owner
var releaseScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'status', 'owner')
if not cur[1] then
  return 0
end
if cur[1] == 'INPROGRESS' and cur[2] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 0
end
if cur[1] ~= 'INPROGRESS' then
  return 2
end
return 3
`)
