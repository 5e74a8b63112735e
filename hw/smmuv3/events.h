// hw/smmuv3: event records — the record builder and decoder.
//
// Owns: the decoded `Event` value every fault path fills, and which fields each event type
// carries (the IDs and field positions are util/smmuv3/events.h).
// Does not own: when an event is recorded (smmuv3.c++) or how it reaches memory (evtq.h).
//
// Faults are data: every stage of translation returns an `Event` instead of throwing, and the
// SMMU turns it into an `EventRecord` for the EVTQ and for translate()'s caller.

#pragma once

#include <kj/string.h>
#include "util/bits.h"
#include "util/smmuv3/events.h"
#include <cstdint>

namespace nb::smmu {

// Event IDs, CLASS and record field positions: util/smmuv3/events.h (facts 3.1, 3.2).
using namespace nb::smmuv3;

kj::StringPtr eventName(EventId id);
// The spec mnemonic, e.g. "F_TRANSLATION"; "UNKNOWN" for other values.

struct EventRecord {
  // One EVTQ entry: 4 little-endian qwords (facts 1.1).
  uint64_t dw[4] = {0, 0, 0, 0};

  bool operator==(const EventRecord& other) const {
    return dw[0] == other.dw[0] && dw[1] == other.dw[1] && dw[2] == other.dw[2] &&
           dw[3] == other.dw[3];
  }
  bool operator!=(const EventRecord& other) const { return !(*this == other); }
  EventId id() const { return EventId(evt::EVT_0_ID.get(dw[0])); }
};

struct Event {
  // An event decoded: the union of every type's fields. Fault paths fill what they know
  // (id, s2, cls, ipa, fetchAddr, ttRnW); the SMMU adds the transaction's fields.
  EventId id = EventId::F_TRANSLATION;
  uint32_t sid = 0;
  bool ssv = false;
  uint32_t ssid = 0;      // 20 bits
  uint16_t stag = 0;
  bool stall = false;
  bool pnu = false;       // 1 = privileged
  bool ind = false;       // 1 = instruction
  bool rnw = false;       // 1 = read
  bool s2 = false;        // the fault came from stage 2
  FaultClass cls = FaultClass::IN;
  bool ttRnW = false;     // the table access was a read (F_PERMISSION during HTTU: 0 = write)
  uint64_t inputAddr = 0;
  uint64_t ipa = 0;       // S2 faults: the IPA being translated
  uint64_t fetchAddr = 0; // fetch faults: the physical address whose read aborted
};

EventRecord makeEventRecord(const Event& event);
// Packs exactly the fields `event.id` carries (facts 3.2 "Fields each event carries"); the
// rest of the record is zero. The IPA and fetch-address fields hold address bits [51:12] and
// [51:3] by definition, so higher address bits are not recorded.

Event decodeEventRecord(const EventRecord& record);
// Unpacks the fields the record's ID carries; the others stay at their defaults.

kj::String formatEvent(const Event& event);
// One line for logs and test failure messages.

}  // namespace nb::smmu
