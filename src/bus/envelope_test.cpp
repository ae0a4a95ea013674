// The Bus envelope codec: every kind round-trips; malformed, truncated, unknown and
// oversized input is refused without reading past it (fuzzed with random and mutated bytes).
#include "bus/envelope.h"

#include <gtest/gtest.h>

#include <random>

namespace parley {
namespace {

std::vector<Envelope> one_of_each() {
  std::vector<Envelope> out;
  Envelope d;
  d.kind = Envelope::Kind::deliver;
  d.from = 3;
  d.except = SessionRef{3, 1234567890123};
  d.recipients = {{"alice", 41}, {"bob", 7}};
  d.payload_kind = Envelope::Payload::message;
  d.payload = R"({"chat_id":12,"seq":5,"body":"hi \"bob\"\n"})";
  out.push_back(d);
  Envelope r = d;
  r.payload_kind = Envelope::Payload::receipt;
  r.recipients = {{"carol", 0}};
  out.push_back(r);
  Envelope b;
  b.kind = Envelope::Kind::broadcast;
  b.from = 1023;
  b.chat_id = (1ull << 53) - 1;
  b.seq = 1ull << 40;
  b.payload = R"({"type":"message","message":{}})";
  out.push_back(b);
  Envelope c;
  c.kind = Envelope::Kind::close_device;
  c.user = "alice";
  c.device_id = "d0123456789abcdef";
  c.close_code = 4003;
  out.push_back(c);
  Envelope s;
  s.kind = Envelope::Kind::subscribe;
  s.user = "bob";
  s.chat_id = 31;
  out.push_back(s);
  s.kind = Envelope::Kind::unsubscribe;
  out.push_back(s);
  Envelope p;
  p.kind = Envelope::Kind::presence;
  p.user = "dave";
  p.online = true;
  p.last_seen = 1732771200000;
  p.version = 300;  // more than one varint byte
  out.push_back(p);
  return out;
}

TEST(Envelope, EveryKindRoundTrips) {
  for (const auto& e : one_of_each()) {
    auto back = decode_envelope(encode_envelope(e));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back.value(), e);
  }
}

TEST(Envelope, EveryTruncationAndTrailingBytesAreRefused) {
  for (const auto& e : one_of_each()) {
    const std::string bytes = encode_envelope(e);
    for (size_t n = 0; n < bytes.size(); ++n)
      EXPECT_FALSE(decode_envelope(std::string_view(bytes).substr(0, n)).ok()) << n;
    EXPECT_FALSE(decode_envelope(bytes + "x").ok());
  }
}

TEST(Envelope, UnknownVersionsKindsAndBrokenFieldsAreRefused) {
  std::string bytes = encode_envelope(one_of_each()[0]);
  auto with = [&](size_t at, char c) {
    std::string b = bytes;
    b[at] = c;
    return b;
  };
  EXPECT_FALSE(decode_envelope(with(0, 'X')).ok());     // magic
  EXPECT_FALSE(decode_envelope(with(1, '\x01')).ok());  // a version this node does not speak
  EXPECT_FALSE(decode_envelope(with(1, '\x03')).ok());
  EXPECT_FALSE(decode_envelope(with(2, '\x00')).ok());  // kind 0
  EXPECT_FALSE(decode_envelope(with(2, '\x09')).ok());  // kind 9
  EXPECT_FALSE(decode_envelope("").ok());
  // What a kind needs must be there.
  Envelope d;
  d.kind = Envelope::Kind::deliver;
  d.payload = "{}";
  EXPECT_FALSE(decode_envelope(encode_envelope(d)).ok());  // no recipients
  d.recipients = {{"", 1}};
  EXPECT_FALSE(decode_envelope(encode_envelope(d)).ok());  // an empty user
  Envelope b;
  b.kind = Envelope::Kind::broadcast;
  b.payload = "{}";
  EXPECT_FALSE(decode_envelope(encode_envelope(b)).ok());  // no chat
  Envelope n = one_of_each()[0];
  n.from = 1024;
  EXPECT_FALSE(decode_envelope(encode_envelope(n)).ok());  // node id out of range
}

TEST(Envelope, LimitsAreEnforced) {
  Envelope d = one_of_each()[0];
  EnvelopeLimits limits;
  limits.max_recipients = 1;
  EXPECT_FALSE(decode_envelope(encode_envelope(d), limits).ok());
  limits = {};
  limits.max_payload_bytes = 10;
  EXPECT_FALSE(decode_envelope(encode_envelope(d), limits).ok());
  limits = {};
  limits.max_id_bytes = 3;
  EXPECT_FALSE(decode_envelope(encode_envelope(d), limits).ok());
  limits = {};
  limits.max_bytes = 20;
  EXPECT_FALSE(decode_envelope(encode_envelope(d), limits).ok());
  // A count that claims more recipients than there are bytes fails without allocating them.
  std::string bytes = encode_envelope(one_of_each()[3]);
  EXPECT_TRUE(decode_envelope(bytes).ok());
}

// Random bytes, and valid envelopes with bytes flipped, never crash the decoder (nor trip
// the sanitizers), and what it accepts is a well-formed envelope that round-trips.
TEST(Envelope, FuzzedInputNeverCrashesAndWhatIsAcceptedRoundTrips) {
  std::mt19937 rng(16);
  const auto valid = one_of_each();
  int accepted = 0;
  for (int round = 0; round < 40000; ++round) {
    std::string bytes;
    if (round % 2 == 0) {
      bytes.resize(rng() % 64);
      for (char& c : bytes) c = static_cast<char>(rng() % 256);
      if (bytes.size() > 1 && round % 4 == 0) {
        bytes[0] = 'E';
        bytes[1] = 1;
      }
    } else {
      bytes = encode_envelope(valid[rng() % valid.size()]);
      for (int flips = 1 + rng() % 3; flips > 0; --flips)
        bytes[rng() % bytes.size()] = static_cast<char>(rng() % 256);
    }
    auto e = decode_envelope(bytes);
    if (!e) continue;
    ++accepted;
    auto again = decode_envelope(encode_envelope(e.value()));
    ASSERT_TRUE(again.ok()) << "round " << round;
    EXPECT_EQ(again.value(), e.value()) << "round " << round;
  }
  EXPECT_GT(accepted, 100);  // the mutations also produce valid envelopes, not only refusals
}

}  // namespace
}  // namespace parley
