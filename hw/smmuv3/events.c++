// hw/smmuv3: event record builder and decoder (facts 3.1, 3.2).

#include "hw/smmuv3/events.h"

namespace nb::smmu {

namespace {

enum Carries : uint16_t {
  // Which fields an event type carries (facts 3.2, "Fields each event carries").
  SSID = 1 << 0,     // SSV + SSID
  ACCESS = 1 << 1,   // RnW, InD, PnU
  RNW = 1 << 2,      // RnW only
  STALL = 1 << 3,    // Stall, STAG
  STAGE = 1 << 4,    // S2, CLASS
  INPUT = 1 << 5,    // input address
  IPA = 1 << 6,      // IPA, when S2 = 1
  FETCH = 1 << 7,    // fetch address
  TTRNW = 1 << 8,
};

struct EventType {
  EventId id;
  const char* name;
  uint16_t carries;
};

constexpr uint16_t TRANSLATION_FAULT = SSID | STALL | STAGE | ACCESS | INPUT | IPA;

constexpr EventType EVENT_TYPES[] = {
  {EventId::F_UUT, "F_UUT", SSID | INPUT | ACCESS},
  {EventId::C_BAD_STREAMID, "C_BAD_STREAMID", SSID},
  {EventId::F_STE_FETCH, "F_STE_FETCH", FETCH},
  {EventId::C_BAD_STE, "C_BAD_STE", SSID},
  {EventId::F_BAD_ATS_TREQ, "F_BAD_ATS_TREQ", SSID | INPUT | ACCESS},
  {EventId::F_STREAM_DISABLED, "F_STREAM_DISABLED", 0},
  {EventId::F_TRANSL_FORBIDDEN, "F_TRANSL_FORBIDDEN", INPUT | RNW},
  {EventId::C_BAD_SUBSTREAMID, "C_BAD_SUBSTREAMID", SSID},
  {EventId::F_CD_FETCH, "F_CD_FETCH", SSID | FETCH},
  {EventId::C_BAD_CD, "C_BAD_CD", SSID},
  {EventId::F_WALK_EABT, "F_WALK_EABT", SSID | STALL | STAGE | ACCESS | INPUT | FETCH},
  {EventId::F_TRANSLATION, "F_TRANSLATION", TRANSLATION_FAULT},
  {EventId::F_ADDR_SIZE, "F_ADDR_SIZE", TRANSLATION_FAULT},
  {EventId::F_ACCESS, "F_ACCESS", TRANSLATION_FAULT},
  {EventId::F_PERMISSION, "F_PERMISSION", TRANSLATION_FAULT | TTRNW},
  {EventId::F_TLB_CONFLICT, "F_TLB_CONFLICT", SSID | STAGE | ACCESS | INPUT | IPA},
  {EventId::F_CFG_CONFLICT, "F_CFG_CONFLICT", SSID},
  {EventId::E_PAGE_REQUEST, "E_PAGE_REQUEST", SSID | ACCESS | INPUT},
  {EventId::F_VMS_FETCH, "F_VMS_FETCH", FETCH},
};

const EventType* findType(EventId id) {
  for (auto& t : EVENT_TYPES) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

}  // namespace

kj::StringPtr eventName(EventId id) {
  const EventType* t = findType(id);
  return t == nullptr ? kj::StringPtr("UNKNOWN") : kj::StringPtr(t->name);
}

EventRecord makeEventRecord(const Event& e) {
  using namespace evt;
  const EventType* t = findType(e.id);
  uint16_t carries = t == nullptr ? 0 : t->carries;
  EventRecord r;
  r.dw[0] = EVT_0_ID.set(r.dw[0], uint8_t(e.id));
  r.dw[0] = EVT_0_SID.set(r.dw[0], e.sid);
  if ((carries & SSID) && e.ssv) {
    r.dw[0] = EVT_0_SSV.set(r.dw[0], 1);
    r.dw[0] = EVT_0_SSID.set(r.dw[0], e.ssid);
  }
  if (carries & STALL) {
    r.dw[1] = EVT_1_STALL.set(r.dw[1], e.stall);
    if (e.stall) r.dw[1] = EVT_1_STAG.set(r.dw[1], e.stag);
  }
  if (carries & ACCESS) {
    r.dw[1] = EVT_1_PNU.set(r.dw[1], e.pnu);
    r.dw[1] = EVT_1_IND.set(r.dw[1], e.ind);
  }
  if (carries & (ACCESS | RNW)) r.dw[1] = EVT_1_RNW.set(r.dw[1], e.rnw);
  if (carries & STAGE) {
    r.dw[1] = EVT_1_S2.set(r.dw[1], e.s2);
    r.dw[1] = EVT_1_CLASS.set(r.dw[1], uint8_t(e.cls));
  }
  if (carries & TTRNW) r.dw[1] = EVT_1_TTRNW.set(r.dw[1], e.ttRnW);
  if (carries & INPUT) r.dw[2] = e.inputAddr;
  // dw3 holds address bits [51:12] (IPA) or [51:3] (fetch address): truncation is the layout.
  if ((carries & IPA) && e.s2) {
    r.dw[3] = EVT_3_IPA.set(r.dw[3], (e.ipa >> 12) & EVT_3_IPA.maxValue());
  }
  if (carries & FETCH) {
    r.dw[3] = EVT_3_FETCH_ADDR.set(r.dw[3], (e.fetchAddr >> 3) & EVT_3_FETCH_ADDR.maxValue());
  }
  return r;
}

Event decodeEventRecord(const EventRecord& r) {
  using namespace evt;
  Event e;
  e.id = EventId(EVT_0_ID.get(r.dw[0]));
  e.sid = uint32_t(EVT_0_SID.get(r.dw[0]));
  const EventType* t = findType(e.id);
  uint16_t carries = t == nullptr ? 0 : t->carries;
  if (carries & SSID) {
    e.ssv = EVT_0_SSV.test(r.dw[0]);
    e.ssid = uint32_t(EVT_0_SSID.get(r.dw[0]));
  }
  if (carries & STALL) {
    e.stall = EVT_1_STALL.test(r.dw[1]);
    e.stag = uint16_t(EVT_1_STAG.get(r.dw[1]));
  }
  if (carries & ACCESS) {
    e.pnu = EVT_1_PNU.test(r.dw[1]);
    e.ind = EVT_1_IND.test(r.dw[1]);
  }
  if (carries & (ACCESS | RNW)) e.rnw = EVT_1_RNW.test(r.dw[1]);
  if (carries & STAGE) {
    e.s2 = EVT_1_S2.test(r.dw[1]);
    e.cls = FaultClass(EVT_1_CLASS.get(r.dw[1]));
  }
  if (carries & TTRNW) e.ttRnW = EVT_1_TTRNW.test(r.dw[1]);
  if (carries & INPUT) e.inputAddr = r.dw[2];
  if ((carries & IPA) && e.s2) e.ipa = EVT_3_IPA.get(r.dw[3]) << 12;
  if (carries & FETCH) e.fetchAddr = EVT_3_FETCH_ADDR.get(r.dw[3]) << 3;
  return e;
}

kj::String formatEvent(const Event& e) {
  return kj::str(eventName(e.id), " sid=", e.sid, e.ssv ? kj::str(" ssid=", e.ssid) : kj::str(),
                 " s2=", e.s2 ? 1 : 0, " class=", uint8_t(e.cls), " rnw=", e.rnw ? 1 : 0,
                 " ind=", e.ind ? 1 : 0, " pnu=", e.pnu ? 1 : 0, " ttrnw=", e.ttRnW ? 1 : 0,
                 " input=0x", kj::hex(e.inputAddr), " ipa=0x", kj::hex(e.ipa), " fetch=0x",
                 kj::hex(e.fetchAddr));
}

}  // namespace nb::smmu
