#include "push/providers.h"

#include "push/apns_provider.h"
#include "push/fcm_provider.h"
#include "push/webhook_provider.h"

namespace parley::push {

Result<std::map<store::PushProvider, std::unique_ptr<Provider>>> make_providers(
    const PushConfig& config) {
  std::map<store::PushProvider, std::unique_ptr<Provider>> out;
  if (!config.webhook_url.empty()) {
    auto p = WebhookProvider::create(config);
    if (!p) return p.error();
    out.emplace(store::PushProvider::webhook, std::move(p.value()));
  }
  if (!config.fcm_project_id.empty()) {
    auto p = FcmProvider::create(config);
    if (!p) return p.error();
    out.emplace(store::PushProvider::fcm, std::move(p.value()));
  }
  if (!config.apns_key_file.empty()) {
    auto p = ApnsProvider::create(config);
    if (!p) return p.error();
    out.emplace(store::PushProvider::apns, std::move(p.value()));
  }
  return out;
}

}  // namespace parley::push
