// Names of constants for messages: "AF_INET6", "SOCK_SEQPACKET" (the number if unknown).
#pragma once

#include <string>

namespace socketeer {

std::string family_name(int family);
std::string type_name(int type);

}  // namespace socketeer
