// `nestbed serve`: the composer's root capability on unix sockets, safe by default.
//
// Owns: the sockets and who may use them. The control socket is created mode 0600 and every
// connection's peer is checked (SO_PEERCRED): only this process's user gets the root — whose
// capabilities can free frames the stack uses, read and write physical memory through an
// identity domain, switch the SMMU off or shut components down. An optional view socket (mode
// 0666) serves a read-only root to any local user: the instance list and each instance's info,
// stats and structures; main capabilities, memory and shutdown are refused. Connections beyond a
// limit, and accept() failures such as running out of descriptors, are refused and logged, never
// fatal. A path that exists is replaced only when it is a stale socket: a regular file, or a
// socket a server still listens on, is an error.
// Does not own: composing (system/composer), the root's behaviour.

#pragma once

#include "system/composer/composer.h"

#include <kj/async-io.h>

namespace nb {

struct ServeOptions {
  kj::String socket;                  // control: this user only
  kj::Maybe<kj::String> viewSocket;   // read-only view for any local user (optional)
  uint32_t maxConnections = 32;       // per socket; more are refused until one closes
};

// Why `path` cannot be used for a new socket (null: it can; a stale socket there is removed).
kj::Maybe<kj::String> prepareSocketPath(kj::StringPtr path);

// Serves until SIGINT or SIGTERM (captured here). Returns normally; sockets are removed.
void serveRoot(kj::AsyncIoContext& io, Composer& composer, const ServeOptions& options);

// The read-only view of a root: list; get returns a component that answers info, stats and
// structures only (no main capability); memory is refused.
rpc::Root::Client readOnlyRoot(rpc::Root::Client root);

}  // namespace nb
