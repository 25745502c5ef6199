// The rendezvous key-value store.
#include "coordinator/rendezvous_store.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace moecap::coordinator {

absl::Status RendezvousStore::CreateScope(absl::string_view scope,
                                          std::set<std::string> agent_ids) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = scopes_.try_emplace(std::string(scope));
  if (!inserted) {
    return absl::AlreadyExistsError(absl::StrCat("rendezvous scope '", scope, "' exists"));
  }
  it->second.agents = std::move(agent_ids);
  return absl::OkStatus();
}

int64_t RendezvousStore::DeleteScope(absl::string_view scope) {
  std::vector<Completion> completions;
  int64_t deleted = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = scopes_.find(std::string(scope));
    if (it == scopes_.end()) return 0;
    deleted = static_cast<int64_t>(it->second.values.size());
    for (WaiterId id : it->second.waiters) {
      auto w = waiters_.find(id);
      if (w == waiters_.end()) continue;
      completions.push_back(
          {std::move(w->second.done),
           absl::NotFoundError(
               absl::StrCat("rendezvous scope '", scope, "' was deleted: its attempt is over")),
           std::nullopt});
      waiters_.erase(w);
    }
    scopes_.erase(it);
  }
  Run(completions);
  return deleted;
}

absl::StatusOr<int64_t> RendezvousStore::DeleteScopeAsAgent(absl::string_view agent_id,
                                                            absl::string_view scope) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::StatusOr<Scope*> s = Access(agent_id, scope); !s.ok()) return s.status();
  }
  return DeleteScope(scope);
}

absl::StatusOr<RendezvousStore::Scope*> RendezvousStore::Access(absl::string_view agent_id,
                                                                absl::string_view scope) {
  auto it = scopes_.find(std::string(scope));
  if (it == scopes_.end()) {
    return absl::NotFoundError(absl::StrCat("rendezvous scope '", scope,
                                            "' does not exist (its attempt is over or never "
                                            "started)"));
  }
  if (it->second.agents.count(std::string(agent_id)) == 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "agent '", agent_id, "' holds no rank of the attempt of rendezvous scope '", scope, "'"));
  }
  return &it->second;
}

absl::Status RendezvousStore::Put(Scope& s, absl::string_view key, std::string value) {
  if (key.empty()) return absl::InvalidArgumentError("field 'key': empty");
  if (static_cast<int64_t>(key.size()) > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'key': ", key.size(), " bytes, more than ", limits_.max_key_bytes));
  }
  if (static_cast<int64_t>(value.size()) > limits_.max_value_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("field 'value': ", value.size(),
                                                   " bytes, more than ", limits_.max_value_bytes));
  }
  auto it = s.values.find(std::string(key));
  const int64_t old_bytes =
      it == s.values.end() ? 0 : static_cast<int64_t>(it->first.size() + it->second.size());
  const int64_t new_bytes = static_cast<int64_t>(key.size() + value.size());
  if (it == s.values.end() && static_cast<int64_t>(s.values.size()) >= limits_.max_keys_per_scope) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rendezvous scope holds ", s.values.size(), " keys, the limit"));
  }
  if (s.bytes - old_bytes + new_bytes > limits_.max_scope_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rendezvous scope would hold more than ", limits_.max_scope_bytes, " bytes"));
  }
  s.bytes += new_bytes - old_bytes;
  s.values[std::string(key)] = std::move(value);
  return absl::OkStatus();
}

void RendezvousStore::CollectReady(Scope& s, std::vector<Completion>& out) {
  for (auto it = s.waiters.begin(); it != s.waiters.end();) {
    auto w = waiters_.find(*it);
    if (w == waiters_.end()) {
      it = s.waiters.erase(it);
      continue;
    }
    bool ready = true;
    for (const std::string& k : w->second.keys) {
      if (s.values.count(k) == 0) {
        ready = false;
        break;
      }
    }
    if (!ready) {
      ++it;
      continue;
    }
    std::optional<std::string> value;
    if (w->second.wants_value) value = s.values[w->second.keys.front()];
    out.push_back({std::move(w->second.done), absl::OkStatus(), std::move(value)});
    waiters_.erase(w);
    it = s.waiters.erase(it);
  }
}

absl::Status RendezvousStore::Set(absl::string_view agent_id, absl::string_view scope,
                                  absl::string_view key, std::string value) {
  std::vector<Completion> completions;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Scope*> s = Access(agent_id, scope);
    if (!s.ok()) return s.status();
    MOECAP_RETURN_IF_ERROR(Put(**s, key, std::move(value)));
    CollectReady(**s, completions);
  }
  Run(completions);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RendezvousStore::Add(absl::string_view agent_id, absl::string_view scope,
                                             absl::string_view key, int64_t delta) {
  std::vector<Completion> completions;
  int64_t value = 0;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Scope*> s = Access(agent_id, scope);
    if (!s.ok()) return s.status();
    auto it = (*s)->values.find(std::string(key));
    if (it != (*s)->values.end() && !absl::SimpleAtoi(it->second, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("field 'key': '", key, "' holds a value that is not an integer counter"));
    }
    value += delta;
    MOECAP_RETURN_IF_ERROR(Put(**s, key, absl::StrCat(value)));
    CollectReady(**s, completions);
  }
  Run(completions);
  return value;
}

RendezvousStore::WaiterId RendezvousStore::NewWaiterId() {
  absl::MutexLock lock(&mu_);
  return next_waiter_++;
}

void RendezvousStore::AddWaiter(Waiter w, Scope& s) {
  s.waiters.insert(w.id);
  deadlines_.emplace(w.deadline, w.id);
  const WaiterId id = w.id;
  waiters_.emplace(id, std::move(w));
}

void RendezvousStore::Get(WaiterId id, absl::string_view agent_id, absl::string_view scope,
                          absl::string_view key, absl::Duration wait, Callback done) {
  absl::Status status;
  std::optional<std::string> value;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Scope*> s = Access(agent_id, scope);
    if (!s.ok()) {
      status = s.status();
    } else if (key.empty()) {
      status = absl::InvalidArgumentError("field 'key': empty");
    } else if (wait < absl::ZeroDuration() || wait > limits_.max_wait) {
      status = absl::InvalidArgumentError(absl::StrCat("field 'wait_seconds': must be in 0..",
                                                       absl::ToDoubleSeconds(limits_.max_wait)));
    } else if (auto it = (*s)->values.find(std::string(key)); it != (*s)->values.end()) {
      value = it->second;
    } else if (wait > absl::ZeroDuration()) {
      if (static_cast<int64_t>((*s)->waiters.size()) >= limits_.max_waiters_per_scope) {
        status = absl::ResourceExhaustedError("too many waiting calls on this rendezvous scope");
      } else {
        AddWaiter({id,
                   std::string(scope),
                   {std::string(key)},
                   true,
                   clock_.Now() + wait,
                   std::move(done)},
                  **s);
        return;
      }
    }
  }
  done(std::move(status), std::move(value));
}

void RendezvousStore::Wait(WaiterId id, absl::string_view agent_id, absl::string_view scope,
                           std::vector<std::string> keys, absl::Duration timeout, Callback done) {
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Scope*> s = Access(agent_id, scope);
    if (!s.ok()) {
      status = s.status();
    } else if (keys.empty()) {
      status = absl::InvalidArgumentError("field 'keys': empty");
    } else if (timeout <= absl::ZeroDuration() || timeout > limits_.max_wait) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "field 'timeout_seconds': must be > 0 and <= ", absl::ToDoubleSeconds(limits_.max_wait)));
    } else {
      bool ready = true;
      for (const std::string& k : keys) {
        if (k.empty()) {
          status = absl::InvalidArgumentError("field 'keys': an empty key");
          break;
        }
        if ((*s)->values.count(k) == 0) ready = false;
      }
      if (status.ok() && !ready) {
        if (static_cast<int64_t>((*s)->waiters.size()) >= limits_.max_waiters_per_scope) {
          status = absl::ResourceExhaustedError("too many waiting calls on this rendezvous scope");
        } else {
          AddWaiter({id, std::string(scope), std::move(keys), false, clock_.Now() + timeout,
                     std::move(done)},
                    **s);
          return;
        }
      }
    }
  }
  done(std::move(status), std::nullopt);
}

bool RendezvousStore::Cancel(WaiterId id) {
  Callback done;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return false;
    done = std::move(it->second.done);
    if (auto s = scopes_.find(it->second.scope); s != scopes_.end()) s->second.waiters.erase(id);
    waiters_.erase(it);
  }
  done(absl::CancelledError("the waiting call was cancelled"), std::nullopt);
  return true;
}

int RendezvousStore::ExpireWaiters(absl::Time now) {
  std::vector<Completion> completions;
  {
    absl::MutexLock lock(&mu_);
    while (!deadlines_.empty() && deadlines_.begin()->first < now) {
      const WaiterId id = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto it = waiters_.find(id);
      if (it == waiters_.end()) continue;  // completed earlier
      Waiter& w = it->second;
      std::vector<std::string> missing;
      auto s = scopes_.find(w.scope);
      for (const std::string& k : w.keys) {
        if (s == scopes_.end() || s->second.values.count(k) == 0) missing.push_back(k);
      }
      if (s != scopes_.end()) s->second.waiters.erase(id);
      completions.push_back({std::move(w.done),
                             absl::DeadlineExceededError(absl::StrCat(
                                 "rendezvous scope '", w.scope, "': timed out waiting for key",
                                 missing.size() == 1 ? " " : "s ", absl::StrJoin(missing, ", "))),
                             std::nullopt});
      waiters_.erase(it);
    }
  }
  Run(completions);
  return static_cast<int>(completions.size());
}

void RendezvousStore::Run(std::vector<Completion>& completions) {
  for (Completion& c : completions) c.done(std::move(c.status), std::move(c.value));
}

int RendezvousStore::scopes() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(scopes_.size());
}

int RendezvousStore::waiters() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiters_.size());
}

}  // namespace moecap::coordinator
