// GET /api/accounts and /api/accounts/{id}: the one account a private key belongs to. Klaviyo's account id is
// its public API key (the `company_id` of the client API).
import { notFound } from '../errors.js';
import type { Handler, HandlerContext } from './context.js';

/** The public key the sandbox reports when none is configured (it then accepts any well-formed one). */
export const DEFAULT_PUBLIC_KEY = 'SANDBX';

/** A believable storefront, so the doctor and the console show a named account. */
const ACCOUNT = {
  organizationName: 'Sandbox Outfitters',
  senderName: 'Sandbox Outfitters',
  senderEmail: 'hello@sandbox-outfitters.example',
  websiteUrl: 'https://sandbox-outfitters.example',
};

export function accountHandlers(ctx: HandlerContext): Record<string, Handler> {
  const publicKey = ctx.keys.publicKey ?? DEFAULT_PUBLIC_KEY;
  const resource = (baseUrl: string) => ({
    type: 'account',
    id: publicKey,
    attributes: {
      test_account: false,
      contact_information: {
        default_sender_name: ACCOUNT.senderName,
        default_sender_email: ACCOUNT.senderEmail,
        website_url: ACCOUNT.websiteUrl,
        organization_name: ACCOUNT.organizationName,
        street_address: { address1: '125 Summer Street', address2: 'Floor 6', city: 'Boston', region: 'MA', country: 'US', zip: '02110' },
      },
      industry: 'Apparel & Accessories',
      timezone: 'US/Eastern',
      preferred_currency: 'USD',
      public_api_key: publicKey,
      locale: 'en-US',
    },
    links: { self: `${baseUrl}/api/accounts/${publicKey}` },
  });

  return {
    get_accounts: (req) => ({ status: 200, body: { data: [resource(req.baseUrl)], links: { self: `${req.baseUrl}/api/accounts`, next: null, prev: null } } }),
    get_account: (req) => {
      if (req.params.id !== publicKey) throw notFound(`An account with id '${req.params.id}' does not exist for this API key.`);
      return { status: 200, body: { data: resource(req.baseUrl), links: { self: `${req.baseUrl}/api/accounts/${publicKey}` } } };
    },
  };
}
