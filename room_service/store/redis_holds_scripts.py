"""The Lua scripts of held sessions on the Redis store: joining (binding the joiner's
recovery id in the same step), holding, recovering, expiring, and reaping an edge whose
recoverable sessions are held.

Each runs on one room's keys (one hash tag, so on Redis Cluster too) after the room
scripts' prelude: KEYS are state, members, people, log, meeting, then `recovery` (hash
participant id -> recovery id: the binding), `held` (zset participant id -> deadline) and
the meeting's `created` (for a join's answer).
ARGV[1] is the event time and ARGV[2] the log's length bound, as for the room scripts, so a
removal appends its `left` entry with the room's next sequence in the same step.

A binding or a hold outlives the participant only until someone looks: every script treats
a participant missing from `people` as gone (left, kicked, replaced, ended), whatever the
binding says, so the room scripts need not know these keys.
"""

from __future__ import annotations

from room_service.store import redis_scripts as room_lua

_HOLD_KEYS = """
local recovery, held = KEYS[6], KEYS[7]
local function present(pid)
  if epoch == '' then return false end
  return redis.call('HGET', people, pid)
end
"""

_PRELUDE = room_lua._PRELUDE + _HOLD_KEYS

_BIND = """
-- Binds a recovery id to a participant just seated. Bindings of participants gone
-- meanwhile are swept once they outnumber the room's participants twice over (plus the
-- slack): amortised O(1) per join, and bounded by the room's size. Answers the swept
-- {participant id, recovery id} pairs (their pointers are the caller's to delete).
local function bind(pid, rid, slack)
  local swept = {}
  if rid == '' then return swept end
  redis.call('HSET', recovery, pid, rid)
  if redis.call('HLEN', recovery) > 2 * redis.call('ZCARD', members) + slack then
    local all = redis.call('HGETALL', recovery)
    for i = 1, #all, 2 do
      if redis.call('HEXISTS', people, all[i]) == 0 then
        redis.call('HDEL', recovery, all[i])
        redis.call('ZREM', held, all[i])
        swept[#swept + 1] = {all[i], all[i + 1]}
      end
    end
  end
  return swept
end
"""

# ARGV: now, maxlen, new_epoch, participant id, participant JSON, user id, edge id,
# socket id, multiple sessions ("1"/"0"), capacity, recovery id ('' : none), sweep slack,
# open ("1"/"0"), then the roster the caller knows: its epoch, head and roster version
# ('' : none). Open: the meeting is read here, and a meeting with a password answers
# {"PASSWORD"} (nothing changed: the caller checks it first); the capacity (the argument
# being the default) and the joiner's permissions come from the meeting as stored.
# Finds the socket and the user's other sessions through the room's indexes, so a join
# decodes none of the others. Answers {refusal}, {"ALREADY", epoch, {}, own JSON, others,
# head, meeting JSON, created} or {"OK", epoch, entries, others, swept bindings (see
# `bind`), own JSON, meeting JSON, created, roster version}, where `others` is nil when
# the room was at the caller's epoch, head and roster version (see `redis_rosters`).
JOIN = (
    _PRELUDE
    + _BIND
    + """
local new_epoch, pid, pjson, user, edge, sock = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local multiple, capacity = ARGV[9] == '1', tonumber(ARGV[10])
local raw = redis.call('GET', meeting)
local refused = joinable(raw)
if refused then return {refused} end
if ARGV[13] == '1' then
  local m = cjson.decode(raw)
  if type(m['password_hash']) == 'string' and m['password_hash'] ~= '' then return {'PASSWORD'} end
  local host = type(m['creator_id']) == 'string' and m['creator_id'] ~= '' and m['creator_id'] == user
  local share = host or m['guests_can_share'] == nil or m['guests_can_share'] == true
  local chat = host or m['guests_can_chat'] == nil or m['guests_can_chat'] == true
  local p = cjson.decode(pjson)
  p['permissions'] = {share, chat, host, host}
  pjson = cjson.encode(p)
  if type(m['max_participants']) == 'number' and m['max_participants'] ~= 0 then
    capacity = m['max_participants']
  end
end
local created = redis.call('GET', KEYS[8])
local own = seated(edge, sock)
if own then
  local reply = already(own)
  reply[7], reply[8] = raw, created
  return reply
end
local replaced, count, head = {}, 0, false
if epoch ~= '' then
  head = redis.call('HGET', state, 'head')
  count = redis.call('ZCARD', members)
  if not multiple then
    for id in string.gmatch(redis.call('HGET', state, 'u:' .. user) or '', '%S+') do
      local raw = redis.call('HGET', people, id)
      if raw and cjson.decode(raw)['user_id'] == user then replaced[#replaced + 1] = {id, raw} end
    end
  end
end
if count - #replaced >= capacity then return {'ROOM_FULL'} end
if epoch == '' then open_room(new_epoch) end
for _, pair in ipairs(replaced) do
  remove(pair[1])
  append('left', pair[2], 'replaced', '')
end
local version = redis.call('HGET', state, 'rv') or '0'
local others = false
if ARGV[14] ~= epoch or ARGV[15] ~= head or ARGV[16] ~= version then others = others_than(nil) end
add(pid, append('joined', pjson, '', ''), pjson, user, edge, sock)
return finish('OK', others, bind(pid, ARGV[11], tonumber(ARGV[12])), pjson, raw, created, version)
"""
)

# ARGV: now, maxlen, participant id, edge id, until. Holds a participant of that edge that
# has a recovery id (again: a new deadline). Answers {"OK"} or {"NO", its deadline if held}.
HOLD = (
    _PRELUDE
    + """
local pid, edge = ARGV[3], ARGV[4]
local raw = present(pid)
if not raw or cjson.decode(raw)['edge_id'] ~= edge or redis.call('HEXISTS', recovery, pid) == 0 then
  return {'NO', redis.call('ZSCORE', held, pid) or false}
end
redis.call('ZADD', held, ARGV[5], pid)
return {'OK'}
"""
)

# ARGV: now, maxlen, participant id, recovery id, user id ('' : any), the participant's JSON
# as read, its JSON on the claiming edge, after sequence, after epoch, has after ("1"/"0"),
# fresh recovery id, take over a still-bound session ("1"/"0").
# Answers {"GONE"|"BOUND"|"FORBIDDEN"|"CONFLICT"} (nothing changed) or
# {"OK"|"RESYNCED", epoch, missed entries, others' JSON, head, edge taken over from ('')}.
RECOVER = (
    _PRELUDE
    + """
local pid, rid, user = ARGV[3], ARGV[4], ARGV[5]
local raw = present(pid)
if not raw or redis.call('HGET', recovery, pid) ~= rid then return {'GONE'} end
local was_held = redis.call('ZSCORE', held, pid)
if not was_held and ARGV[12] ~= '1' then return {'BOUND'} end
local p = cjson.decode(raw)
if user ~= '' and p['user_id'] ~= user then return {'FORBIDDEN'} end
if raw ~= ARGV[6] then return {'CONFLICT'} end
redis.call('ZREM', held, pid)
redis.call('HSET', people, pid, ARGV[7])
redis.call('HINCRBY', state, 'rv', 1)  -- the roster changed without an entry: see JOIN
unindex(pid, p)
local q = cjson.decode(ARGV[7])
index(pid, q['user_id'], q['edge_id'], q['socket_id'])
local moved_from = ''
if not was_held then moved_from = p['edge_id'] end
local head = tonumber(redis.call('HGET', state, 'head'))
local others = {}
for _, pair in ipairs(roster()) do
  if pair[1] ~= pid then others[#others + 1] = pair[2] end
end
local after, missed = tonumber(ARGV[8]), nil
if ARGV[10] == '1' and ARGV[9] == epoch and after <= head then
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
  local oldest = head + 1
  if #first > 0 then oldest = tonumber(string.match(first[1][1], '-(%d+)$')) end
  if after + 1 >= oldest then
    missed = {}
    for i, item in ipairs(redis.call('XRANGE', log, '0-' .. (after + 1), '+')) do
      local f = {}
      for j = 1, #item[2], 2 do f[item[2][j]] = item[2][j + 1] end
      missed[i] = {tonumber(string.match(item[1], '-(%d+)$')), f.k, f.p, f.r, f.b, f.t}
    end
  end
end
if missed then return {'OK', epoch, missed, others, head, moved_from} end
-- The log no longer reaches back: the session goes on under the fresh id.
if ARGV[11] ~= '' then redis.call('HSET', recovery, pid, ARGV[11]) else redis.call('HDEL', recovery, pid) end
return {'RESYNCED', epoch, {}, others, head, moved_from}
"""
)

# ARGV: now, maxlen, participant id, the store clock's now. Removes a held participant
# whose deadline passed (reason disconnected). Answers {"OK", epoch, entries, recovery id,
# participants left (0: the room closed)},
# {"LATER", epoch, {}, deadline} (held again meanwhile) or {"NONE", epoch, {}} (not held).
EXPIRE = (
    _PRELUDE
    + """
local pid = ARGV[3]
local due = redis.call('ZSCORE', held, pid)
if not due then return {'NONE', epoch, {}} end
if tonumber(due) > tonumber(ARGV[4]) then return {'LATER', epoch, {}, due} end
redis.call('ZREM', held, pid)
local rid = redis.call('HGET', recovery, pid)
redis.call('HDEL', recovery, pid)
local raw, remaining = present(pid), redis.call('ZCARD', members)
if raw then
  remove(pid)
  append('left', raw, 'disconnected', '')
  remaining = close_if_empty()
end
return finish('OK', rid or false, remaining)
"""
)

# ARGV: now, maxlen, edge id, hold until ('' : hold nobody). Reaps an edge in one room: its
# participants with a recovery id are held until then, the others leave (disconnected);
# those already held (their socket closed before the edge died) stay held. Answers
# {"OK", epoch, entries, {participant id, deadline}... of every held one, participants left}.
DROP_EDGE = (
    _PRELUDE
    + """
local edge, hold_until = ARGV[3], ARGV[4]
local kept = {}
if epoch == '' then return {'OK', epoch, {}, kept, 0} end
for _, pair in ipairs(roster()) do
  local pid = pair[1]
  if cjson.decode(pair[2])['edge_id'] == edge then
    local due = redis.call('ZSCORE', held, pid)
    if not due and hold_until ~= '' and redis.call('HEXISTS', recovery, pid) == 1 then
      redis.call('ZADD', held, hold_until, pid)
      due = hold_until
    end
    if due then
      kept[#kept + 1] = {pid, due}
    else
      remove(pid)
      append('left', pair[2], 'disconnected', '')
    end
  end
end
return finish('OK', kept, close_if_empty())
"""
)

# KEYS: one key (a recovery id's pointer, or the deadline index). Deletes a pointer only
# while it still names what the caller saw (the id may have been bound elsewhere since).
DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the deadline index. ARGV: member, the score the caller saw, new score ('' : none).
# Moves (or removes) an index entry only if nobody changed it since it was read.
SETTLE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
"""
